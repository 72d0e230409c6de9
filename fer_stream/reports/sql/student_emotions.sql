-- student_emotions: per student per lecture: share of each of the 7 emotions, dominant emotion,
-- mean probabilities.
--
-- Definitions (docs/REPORTS.md):
-- * readable frames: frames in which the student's face was big enough for the emotion model to be
--   read (docs/VALIDITY.md: below the gate its accuracy falls and it answers "sad" for most faces);
--   unreadable faces count in no share. readable_share = readable frames / frames seen: show it
--   beside every number, a mix over 3 readable frames of 200 is not the student's mood.
-- * share_<emotion> = readable frames in which the face is labelled <emotion> (the label of the
--   highest probability, the records' `emotion`) / readable frames; the 7 shares of a row sum to
--   1, or are all null when no frame was readable.
-- * dominant_emotion = the emotion with the largest share; a tie goes to the earlier label in
--   FER2013 order (angry, disgust, fear, happy, sad, surprise, neutral); null (unreadable) when no
--   frame was readable.
-- * p_<emotion> = mean probability over the readable frames; they sum to 1 (null if none).
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
        frames_emotion_readable,
        [n_angry, n_disgust, n_fear, n_happy, n_sad, n_surprise, n_neutral] as counts
    from per_student
),

dominant as (
    select
        video_id,
        student_id,
        -- list_position finds the first maximum: a tie goes to the earlier label; no readable
        -- frame: no dominant emotion (not the first label of an all-zero list)
        case when frames_emotion_readable > 0 then
            ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'][
                list_position(counts, list_max(counts))
            ]
        end as dominant_emotion,
        list_max(counts) / nullif(frames_emotion_readable, 0) as dominant_share
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
        per_student.frames_emotion_readable,
        per_student.frames_emotion_readable / per_student.frames_visible as readable_share,
        dominant.dominant_emotion,
        dominant.dominant_share,
        per_student.n_angry / nullif(per_student.frames_emotion_readable, 0) as share_angry,
        per_student.n_disgust / nullif(per_student.frames_emotion_readable, 0) as share_disgust,
        per_student.n_fear / nullif(per_student.frames_emotion_readable, 0) as share_fear,
        per_student.n_happy / nullif(per_student.frames_emotion_readable, 0) as share_happy,
        per_student.n_sad / nullif(per_student.frames_emotion_readable, 0) as share_sad,
        per_student.n_surprise / nullif(per_student.frames_emotion_readable, 0) as share_surprise,
        per_student.n_neutral / nullif(per_student.frames_emotion_readable, 0) as share_neutral,
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
