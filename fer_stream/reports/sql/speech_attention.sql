-- speech_attention: per lecture, the class's head-up rate and attention while someone is speaking
-- and while the room is silent; a course's rows in date order are its trend over time.
--
-- Definitions (docs/REPORTS.md "Speech"):
-- * a sampled frame is during speech when its pts_s lies inside a stretch of the speech/ table,
--   else during silence (frame_speech in _speech.sql); minutes_speech / minutes_silence = those
--   frames x the seconds each stands for.
-- * head_up_rate_<speech|silence> = students facing the front / students whose head state was read,
--   pooled over the frames during speech (silence) (head_up_frames, _head_up.sql);
--   attention_<speech|silence> = mean attention score of the students' measured faces in them.
-- * head_up_gap = head_up_rate_speech - head_up_rate_silence (positive: the class looks up more
--   while someone talks); attention_gap likewise.
-- * a lecture whose audio was not analysed (`speech` not 'done': no audio track, a broken one, the
--   speech signal off, older records) has a row with every speech number null.
-- Parameters: $course, $date_from, $date_to (inclusive), $video (id or prefix).

with

scope as (
    select video_id, course, lecture_date, frame_s, speech
    from lectures_in($course, $date_from, $date_to, $video)
),

frame_head as (
    select
        frame_speech.video_id,
        frame_speech.speaking,
        head.students_up,
        head.students_known
    from frame_speech
    inner join head_up_frames($course, $date_from, $date_to, $video) as head
        on frame_speech.video_id = head.video_id and frame_speech.frame_index = head.frame_index
    where frame_speech.speaking is not null
),

head as (
    select
        video_id,
        count(*) filter (where speaking) as frames_speech,
        count(*) filter (where not speaking) as frames_silence,
        sum(students_up) filter (where speaking)
        / nullif(sum(students_known) filter (where speaking), 0) as head_up_rate_speech,
        sum(students_up) filter (where not speaking)
        / nullif(sum(students_known) filter (where not speaking), 0) as head_up_rate_silence
    from frame_head
    group by video_id
),

attention as (
    select
        faces.video_id,
        avg(faces.attention) filter (where frame_speech.speaking) as attention_speech,
        avg(faces.attention) filter (where not frame_speech.speaking) as attention_silence
    from faces
    inner join frame_speech
        on faces.video_id = frame_speech.video_id and faces.frame_index = frame_speech.frame_index
    where faces.video_id in (select video_id from scope)
        and faces.student_id is not null
        and faces.attention is not null
        and frame_speech.speaking is not null
    group by faces.video_id
),

final as (
    select
        scope.course,
        scope.lecture_date,
        scope.video_id,
        scope.speech,
        head.frames_speech / nullif(head.frames_speech + head.frames_silence, 0) as speech_share,
        head.frames_speech * scope.frame_s / 60 as minutes_speech,
        head.frames_silence * scope.frame_s / 60 as minutes_silence,
        head.head_up_rate_speech,
        head.head_up_rate_silence,
        head.head_up_rate_speech - head.head_up_rate_silence as head_up_gap,
        attention.attention_speech,
        attention.attention_silence,
        attention.attention_speech - attention.attention_silence as attention_gap
    from scope
    left join head on scope.video_id = head.video_id
    left join attention on scope.video_id = attention.video_id
    order by scope.course, scope.lecture_date, scope.video_id
)

select * from final
