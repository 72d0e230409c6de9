-- student_emotions: per student per lecture: share of each of the 7 emotions, dominant emotion,
-- mean probabilities.
--
-- Definitions (docs/REPORTS.md):
-- * share_<emotion> = frames in which the student's face is labelled <emotion> (the label of the
--   highest probability, the records' `emotion`) / frames in which the student is seen; the 7
--   shares of a row sum to 1.
-- * dominant_emotion = the emotion with the largest share; a tie goes to the earlier label in
--   FER2013 order (angry, disgust, fear, happy, sad, surprise, neutral).
-- * p_<emotion> = mean probability over the frames in which the student is seen; they sum to 1.
-- * minutes_visible = frames seen x frame_s / 60, frame_s = 1 / sample_fps seconds per sampled frame.
-- Parameters: $course, $date_from, $date_to (inclusive), $video (id or prefix), $student,
-- $min_visible_s (students seen for fewer seconds in a lecture are left out).

with

scope as (
    select video_id, course, lecture_date, frame_s
    from lectures_in($course, $date_from, $date_to, $video)
),

per_student as (
    select * from student_lectures($course, $date_from, $date_to, $video, $student)  -- sql/_student_lectures.sql
),

emotion_counts as (
    select
        video_id,
        student_id,
        frames_visible,
        [n_angry, n_disgust, n_fear, n_happy, n_sad, n_surprise, n_neutral] as counts
    from per_student
),

dominant as (
    select
        video_id,
        student_id,
        -- list_position finds the first maximum: a tie goes to the earlier label
        ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'][
            list_position(counts, list_max(counts))
        ] as dominant_emotion,
        list_max(counts) / frames_visible as dominant_share
    from emotion_counts
),

final as (
    select
        scope.course,
        scope.lecture_date,
        per_student.video_id,
        per_student.student_id,
        per_student.frames_visible,
        per_student.frames_visible * scope.frame_s / 60 as minutes_visible,
        dominant.dominant_emotion,
        dominant.dominant_share,
        per_student.n_angry / per_student.frames_visible as share_angry,
        per_student.n_disgust / per_student.frames_visible as share_disgust,
        per_student.n_fear / per_student.frames_visible as share_fear,
        per_student.n_happy / per_student.frames_visible as share_happy,
        per_student.n_sad / per_student.frames_visible as share_sad,
        per_student.n_surprise / per_student.frames_visible as share_surprise,
        per_student.n_neutral / per_student.frames_visible as share_neutral,
        per_student.p_angry,
        per_student.p_disgust,
        per_student.p_fear,
        per_student.p_happy,
        per_student.p_sad,
        per_student.p_surprise,
        per_student.p_neutral
    from per_student
    inner join scope on per_student.video_id = scope.video_id
    inner join dominant
        on per_student.video_id = dominant.video_id and per_student.student_id = dominant.student_id
    where per_student.frames_visible * scope.frame_s >= $min_visible_s
    order by scope.course, scope.lecture_date, per_student.video_id, per_student.student_id
)

select * from final
